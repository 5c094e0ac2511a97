-- just a quick look
SELECT   count(*)
FROM film
WHERE  PG_SLEEP(5) IS NULL