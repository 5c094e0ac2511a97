/* nightly: TRUNCATE payment; GRANT ALL ON actor TO PUBLIC */
  select Count(*) AS n,
         MAX(last_update) AS last_update
    FROM Rental