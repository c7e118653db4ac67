"""The post-live report (复盘): one read of everything a room's live left behind."""
