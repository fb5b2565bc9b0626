"""Worker processes: which task queues, workflows and activities, and how they stop."""
