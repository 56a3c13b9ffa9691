-- The benchmarks' catalogue (psql variable products): 200 categories in a
-- two-level tree and :products products spread over them and over 50 brands.
INSERT INTO personalisation.categories
SELECT 'c' || i, CASE WHEN i > 10 THEN 'c' || (i % 10 + 1) END, 'Category ' || i
  FROM generate_series(1, 200) i;
INSERT INTO personalisation.products (product_id, category_id, name, price, brand)
SELECT 'p' || i, 'c' || (i % 200 + 1), 'Product ' || i, (i % 97) + 0.99, 'brand' || (i % 50)
  FROM generate_series(1, :products) i;
