"""Reading the user's input files: path files and spend files.

The one part that opens the analyst's files (and, for large path files, forks reader workers), so
attribution stays pure: it receives batches and plain rows, never a path on disk.
"""
