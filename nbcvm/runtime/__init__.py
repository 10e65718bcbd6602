"""nbcvm.runtime"""
