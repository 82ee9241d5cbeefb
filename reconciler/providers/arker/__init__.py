"""providers/arker"""
