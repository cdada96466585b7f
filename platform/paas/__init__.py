"""paas: a self-hosted, Heroku-style twelve-factor platform (the control plane)."""
