"""DynamoDB access, one module per kind of item; functions over the table, no classes of rows."""
