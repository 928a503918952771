"""Text tools every layer uses: normalisation (one matching form), tokens, places, the
glossary, and the figures extracted from report text. Imports nothing above it."""
