-- sqlite.sql: insert/select/index-heavy script for bench/programs.sh (deterministic output).
PRAGMA cache_size = -20000;
CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c REAL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
INSERT INTO t(a, b, c) SELECT (i * 7919) % 10007, printf('row-%08d-%s', i, substr('abcdefghijklmnop', 1 + i % 16)), i * 0.5 FROM n;
CREATE INDEX t_a ON t(a);
CREATE INDEX t_b ON t(b);
SELECT count(*), sum(a), min(b), max(b) FROM t;
SELECT a, count(*) FROM t WHERE a BETWEEN 100 AND 110 GROUP BY a ORDER BY a;
CREATE TABLE u AS SELECT a, group_concat(b, ';') AS bs, avg(c) AS ac FROM t GROUP BY a;
SELECT count(*), sum(length(bs)), printf('%.3f', sum(ac)) FROM u;
UPDATE t SET b = b || '-x' WHERE a % 3 = 0;
DELETE FROM t WHERE a % 5 = 1;
SELECT count(*), sum(length(b)) FROM t;
SELECT t.a, count(*) FROM t JOIN u ON t.a = u.a WHERE t.a < 50 GROUP BY t.a ORDER BY 2 DESC, 1 LIMIT 5;
