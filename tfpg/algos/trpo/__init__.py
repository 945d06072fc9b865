"""trpo"""
