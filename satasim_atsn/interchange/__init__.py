"""Interchange with other SNN tools (floor 4: it runs the forward to check an import): NIR."""
