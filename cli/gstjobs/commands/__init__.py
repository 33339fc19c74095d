"""The CLI's commands, one module per group (jobs, health, outbox, config, firm): each lists its
commands in COMMANDS, and gstjobs.main registers every module of GROUPS."""
