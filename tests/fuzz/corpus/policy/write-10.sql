  
	delete
FROM
    actor  