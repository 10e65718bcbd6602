"""nbcvm.tools"""
