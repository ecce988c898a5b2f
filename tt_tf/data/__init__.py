"""Data: reading tables (``tables``), the schema of their columns (``schema``), raw values as the
arrays the towers take (``raw_values``), Parquet by row group (``streaming``) and synthetic data
with planted structure (``synthetic``)."""
