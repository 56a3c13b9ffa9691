-- ranking_eval_report.sql: the tables of bench/ranking_eval.sh, and a last
-- line for make bench's summary.
\echo precision@10 of the planted category (mean, 95% interval), after n views, the first a stray one
SELECT pass, method,
       max(CASE views WHEN 1 THEN to_char(mean, 'FM0.00') || ' ±' || to_char(1.96 * sd / sqrt(visitors), 'FM0.00') END) AS "1 view",
       max(CASE views WHEN 2 THEN to_char(mean, 'FM0.00') || ' ±' || to_char(1.96 * sd / sqrt(visitors), 'FM0.00') END) AS "2 views",
       max(CASE views WHEN 3 THEN to_char(mean, 'FM0.00') || ' ±' || to_char(1.96 * sd / sqrt(visitors), 'FM0.00') END) AS "3 views",
       max(CASE views WHEN 5 THEN to_char(mean, 'FM0.00') || ' ±' || to_char(1.96 * sd / sqrt(visitors), 'FM0.00') END) AS "5 views",
       max(CASE views WHEN 1 THEN to_char(stray, 'FM0.00') END) AS "stray's share after 1",
       max(CASE views WHEN 2 THEN to_char(stray, 'FM0.00') END) AS "after 2"
  FROM evalres.precision GROUP BY pass, method ORDER BY min(ctid), method;

\echo views of a new interest until it holds half the top 10, after 8 views of another (17: not within 16)
SELECT pass, method, percentile_disc(0.5) WITHIN GROUP (ORDER BY views) AS median,
       percentile_disc(0.25) WITHIN GROUP (ORDER BY views) AS p25,
       percentile_disc(0.75) WITHIN GROUP (ORDER BY views) AS p75
  FROM evalres.shift GROUP BY pass, method ORDER BY min(ctid), method;

\pset tuples_only on
\pset format unaligned
SELECT 'ranking, ' || r.pass || ': precision@10 after 1 stray view ' || to_char(r.mean, 'FM0.00')
       || ' (most-viewed first ' || to_char(b.mean, 'FM0.00') || '), the stray category''s share of the top 10 '
       || to_char(r.stray, 'FM0.00') || ' (' || to_char(b.stray, 'FM0.00') || ')'
       || ', change of interest in ' || (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY views) FROM evalres.shift s
                                        WHERE s.pass = r.pass AND s.method = 'ranking')
       || ' views against ' || (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY views) FROM evalres.shift s
                               WHERE s.pass = r.pass AND s.method <> 'ranking')
       || ' for counting (target: about half)'
  FROM evalres.precision r JOIN evalres.precision b ON b.pass = r.pass AND b.views = 1 AND b.method <> 'ranking'
 WHERE r.method = 'ranking' AND r.views = 1 ORDER BY r.ctid;
