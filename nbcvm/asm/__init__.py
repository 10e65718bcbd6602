"""nbcvm.asm"""
