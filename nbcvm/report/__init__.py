"""nbcvm.report"""
