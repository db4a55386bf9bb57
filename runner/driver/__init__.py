"""What runs in the driver process, the one `sweepscope run` starts: launch and resume
(runner.driver.launch), the Ray it runs on (ray_env, and the warm runtime of `sweepscope
up` it joins: runtime), the drive itself (drive), the Tune
callbacks that turn results into store writes (callback), the writer that holds writes
through store outages (writer), the stopper (stopper), checkpoints on resume (checkpoints),
the progress line (progress), alerts (notify), interrupts and storage paths.

The rule: nothing here is imported by a trial (runner.trial); what both sides agree on lives
in the shared modules (runner.protocol, runner.spec, runner.status, runner.errors).
"""
