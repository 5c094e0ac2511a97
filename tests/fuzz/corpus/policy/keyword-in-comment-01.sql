-- DROP TABLE actor; DELETE FROM film;
SELECT count(*) AS films /* UPDATE film SET rental_rate = 0; COMMIT; */ FROM film