"""CRM segmentation warehouse: Dagster assets over DuckDB built from versioned SQL files."""
