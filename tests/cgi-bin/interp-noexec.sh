#!/etc/passwd
echo never
