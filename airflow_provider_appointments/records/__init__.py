"""The data side: property schema, DataFrame serialization, input readers, output writers and reports."""
