"""nbcvm.bytecode"""
