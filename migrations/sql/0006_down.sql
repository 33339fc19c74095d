-- Back to 0005: the installation's identity goes (the smtp.host row, if 0006 wrote it, stays:
-- it is the value the old default had).
DROP TABLE gstjobs.installation CASCADE;
