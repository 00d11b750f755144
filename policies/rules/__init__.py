"""Rule functions, one per policy id, grouped by subject; ``policies.pack`` lists them with their metadata."""
