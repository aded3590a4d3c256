"""Personal DCGANs, personal discriminators and the general discriminator (issue 4).

Imports nothing from enroll/, recognize/, db/ or api/.
"""
