"""The operators' view: consumer lag per partition, Burrow-like status rules, /v1/ops/* and
the dashboard, served by the query API process."""
