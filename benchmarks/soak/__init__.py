"""``make soak``: the provider in long-lived processes, through thousands of token rotations."""
