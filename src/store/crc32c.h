/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of journal records.
 */
#ifndef WR_STORE_CRC32C_H
#define WR_STORE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t wr_crc32c(uint32_t crc, const void *data, size_t len);
/* The same without the CPU's instruction (tests compare the two). */
uint32_t wr_crc32c_sw(uint32_t crc, const void *data, size_t len);

#endif
