"""Services: the migration logic, free of kopf, raising typed FerryErrors."""
