// SPDX-License-Identifier: MIT
/*
 * Bounds the offset between L1's clock and L0's, for the live view's
 * delay (check_live.py): L0 writes its CLOCK_REALTIME in nanoseconds to a
 * file of the 9p share every 100 ms; this program, in L1, reads it, then
 * reads its own clock, and appends both to the output, every 500 ms until
 * the stop file exists. A value read was written before it was read, so
 * L0 - L1 >= read value - own clock; the largest of these is a lower
 * bound of the offset, which makes "wall clock - event time" an upper
 * bound of the true delay once it is subtracted.
 *
 * Usage: clock-pair L0-CLOCK-FILE OUTPUT STOP-FILE
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	FILE *out;

	if (argc != 4) {
		fprintf(stderr, "usage: clock-pair L0-CLOCK-FILE OUTPUT STOP-FILE\n");
		return 2;
	}
	out = fopen(argv[2], "w");
	if (!out) {
		perror(argv[2]);
		return 1;
	}
	while (access(argv[3], F_OK) != 0) {
		FILE *in = fopen(argv[1], "r");
		long long theirs;

		if (in) {
			if (fscanf(in, "%lld", &theirs) == 1)
				fprintf(out, "%lld %lld\n", theirs, now_ns());
			fclose(in);
			fflush(out);
		}
		usleep(500000);
	}
	return fclose(out) == 0 ? 0 : 1;
}
