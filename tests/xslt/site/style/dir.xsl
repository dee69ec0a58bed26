<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="html" encoding="UTF-8"/>
  <xsl:template match="/filelist"><ul class="{@path}"><xsl:for-each select="file"><li><xsl:value-of select="@name"/></li></xsl:for-each></ul></xsl:template>
</xsl:stylesheet>
