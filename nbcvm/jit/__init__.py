"""nbcvm.jit"""
