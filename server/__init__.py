"""budgetpass.server."""
