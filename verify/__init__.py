"""budgetpass.verify."""
