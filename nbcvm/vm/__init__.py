"""The interpreter: closure compiler, handler families, the loop, natives."""
