"""Quality measures as plain functions (FID/KID/PRDC and their feature extractors, the digits judge, mode
coverage, InfoGAN codes, translation error, paired scores, PSNR/SSIM), low enough that training can use them."""
