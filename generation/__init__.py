"""budgetpass.generation."""
