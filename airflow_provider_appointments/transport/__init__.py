"""HTTP layer: authentication, retries, pacing and the session that talks to HubSpot."""
