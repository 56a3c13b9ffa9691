-- The benchmark shop: a three-level category tree (10 x 10 x 10 leaves under
-- 10 roots: 1,110 categories), 20,000 products in the leaves, 200 brands.
INSERT INTO personalisation.categories (category_id, parent_id, name)
SELECT 'c' || i, NULL, 'Category ' || i FROM generate_series(1, 10) i;
INSERT INTO personalisation.categories (category_id, parent_id, name)
SELECT 'c' || i || '-' || j, 'c' || i, 'Category ' || i || '-' || j
  FROM generate_series(1, 10) i, generate_series(1, 10) j;
INSERT INTO personalisation.categories (category_id, parent_id, name)
SELECT 'c' || i || '-' || j || '-' || k, 'c' || i || '-' || j, 'Category ' || i || '-' || j || '-' || k
  FROM generate_series(1, 10) i, generate_series(1, 10) j, generate_series(1, 10) k;
-- product n sits in leaf c(n%10+1)-(n/10%10+1)-(n/100%10+1)
INSERT INTO personalisation.products (product_id, category_id, name, price, brand, in_stock)
SELECT 'p' || n, 'c' || (n % 10 + 1) || '-' || (n / 10 % 10 + 1) || '-' || (n / 100 % 10 + 1),
       'Product ' || n, 5 + n % 200, 'brand-' || (n % 200), n % 50 <> 0
  FROM generate_series(1, 20000) n;
ANALYZE personalisation.categories, personalisation.products;
