/* harmless */ -- really
UpDaTe staff SET password = 'x'