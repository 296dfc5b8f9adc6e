"""The reconciler: a scheduled sweep that finishes what the saga, refunds and cancellations could not."""
