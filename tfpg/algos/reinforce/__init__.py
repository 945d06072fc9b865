"""reinforce"""
