"""The CEB message catalogue, record extraction and receipt building."""
