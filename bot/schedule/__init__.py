"""Opening hours: windows in the merchant's zone (windows), the plan for a moment (plan), and the
keeper that takes ads offline or hidden outside them and back at the next window (keeper).
"""
