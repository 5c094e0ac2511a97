SELECT rating, count(*) AS films FROM film GROUP BY rating ORDER BY rating; -- one statement, then a comment
