"""``fireact-eval experiment CONFIG.yaml``: a resumable grid of train x evaluate cells.

``config`` reads and checks the YAML (one line naming the file and key for anything wrong,
before anything runs); ``plan`` turns it into cells, each named by a hash of what changes its
result; ``runner`` runs them (here, several at once, or as SLURM jobs through submitit) and
records what each did; ``results.frame`` reads the folder back as runs with the grid's axes.
"""
