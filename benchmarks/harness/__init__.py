"""What a benchmark runs on and how: processes, servers, a migration run, its event log."""
