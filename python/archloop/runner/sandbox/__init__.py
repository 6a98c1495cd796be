"""The trusted side: building the bubblewrap command, supervising the sandboxed process."""
