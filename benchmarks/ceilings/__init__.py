"""What the migration's figures are compared with, measured in the same invocation on the same data."""
