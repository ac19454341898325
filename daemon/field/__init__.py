"""Community monitors' field reports (群测群防): crack-marker readings and observations."""
